"""A synthetic invocation trace in the shape of the Azure Functions 2019 traces
(Shahrad et al., "Serverless in the Wild", ATC'20): per-function invocation
rates are heavy-tailed and arrivals are bursty.  Reproducible from a seed.

Distribution (written down in docs/results.md too):
- per-function mean rate r_i = r * X_i / mean(X), X_i ~ LogNormal(0, SIGMA): the node
  sees N*r requests/s in total, a few functions get several times r, most get less;
- inter-arrival times of function i ~ Gamma(shape K, scale 1/(K*r_i)): mean 1/r_i and
  coefficient of variation 1/sqrt(K) = 2 (Poisson would be 1), i.e. bursts and gaps;
- each function starts at a uniformly random phase, the trace lasts `seconds`.
The real traces span many orders of magnitude of rate (most functions are
invoked less than once a minute); density is about warm instances under load,
so the tail is kept but compressed (SIGMA = 1)."""
import random

SIGMA = 1.0
K = 0.25


def generate(functions, rate, seconds, seed, payload="{}"):
    """[(t_us, function, payload)] sorted by time."""
    rnd = random.Random(seed)
    xs = [rnd.lognormvariate(0.0, SIGMA) for _ in functions]
    mean = sum(xs) / len(xs)
    events = []
    for fn, x in zip(functions, xs):
        ri = rate * x / mean
        t = rnd.uniform(0, 1.0 / ri)
        while t < seconds:
            events.append((int(t * 1e6), fn, payload))
            t += rnd.gammavariate(K, 1.0 / (K * ri))
    events.sort()
    return events


def write(events, path):
    with open(path, "w") as f:
        for t, fn, p in events:
            f.write(f"{t} {fn} {p}\n")
