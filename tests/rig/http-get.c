/* http-get: a minimal static HTTP/1.0 GET client for the rig's virtio-net check.
 *
 *   http-get IPV4 PORT PATH TIMEOUT_SEC     -> prints the response body, exit 0 on a 200
 *
 * Why not busybox wget: L1 is busybox-static, and once a test copies glibc's shared
 * libraries into L1 (any dynamic --file does), static busybox's name lookup dlopen()s
 * them and crashes.  This client never resolves names (numeric IPv4 only).
 * Exit: 0 = 200 OK, 1 = connect/IO error or timeout, 2 = usage, 3 = non-200 answer. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: http-get IPV4 PORT PATH TIMEOUT_SEC\n");
        return 2;
    }
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
        fprintf(stderr, "http-get: '%s' is not a numeric IPv4 address\n", argv[1]);
        return 2;
    }
    struct timeval tv = { .tv_sec = atoi(argv[4]) };
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) { perror("http-get: socket"); return 1; }
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);   /* also bounds connect() */
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "http-get: connect %s:%s: %s\n", argv[1], argv[2], strerror(errno));
        return 1;
    }
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", argv[3], argv[1]);
    if (n < 0 || (size_t)n >= sizeof req || write(s, req, (size_t)n) != n) {
        fprintf(stderr, "http-get: sending the request failed\n");
        return 1;
    }
    static char resp[65536];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof resp - 1 && (r = read(s, resp + len, sizeof resp - 1 - len)) > 0) len += (size_t)r;
    resp[len] = '\0';
    close(s);
    char *body = strstr(resp, "\r\n\r\n");
    if (!body) { fprintf(stderr, "http-get: no complete response (%zu bytes)\n", len); return 1; }
    fputs(body + 4, stdout);
    if (strncmp(resp, "HTTP/1.0 200", 12) && strncmp(resp, "HTTP/1.1 200", 12)) {
        fprintf(stderr, "http-get: status line '%.40s'\n", resp);
        return 3;
    }
    return 0;
}
