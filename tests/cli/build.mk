# Tests of the nexus CLI: argument errors, the node lifecycle against a stand-in
# nexusd and the real local S3 server, and deploy/invoke/logs/down against the real
# nexusd when it, the guest runtime and the rootfs are built (skipped loudly if not).
.PHONY: test-cli
test-cli: $(BIN)/nexus
	BUILD=$(BUILD) NEXUS=$(abspath $(BIN)/nexus) tests/cli/run.sh

TEST_TARGETS += test-cli
