# bench/vm-density: density (nexus vs baseline) on the vm driver in the nested rig
# (bench/vm-density/README.md).  The rig run itself (run.sh, ~25 min of TCG) is a benchmark,
# never part of make test; this checks its host side: the traces and the page report.py makes
# from a made-up raw log (the rule, reruns, stopped runs).
NEXUS_TEST_RESULTS ?= $(CURDIR)/$(BUILD)/test-results
.PHONY: test-vm-density
test-vm-density:
	@mkdir -p $(NEXUS_TEST_RESULTS)
	NEXUS_TEST_RESULTS=$(NEXUS_TEST_RESULTS) /usr/bin/python3 bench/vm-density/test_vm_density.py
TEST_TARGETS += test-vm-density
