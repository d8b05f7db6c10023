# bench/vm-ab: the A/B on the vm driver in the nested rig (bench/vm-ab/README.md). The rig run
# itself (bench/vm-ab/run.sh, 20-60 min of TCG) is a benchmark, never part of make test; this
# checks its host side: the cells it runs and the page report.py makes from a raw log.
NEXUS_TEST_RESULTS ?= $(CURDIR)/$(BUILD)/test-results
.PHONY: test-vm-ab
test-vm-ab:
	@mkdir -p $(NEXUS_TEST_RESULTS)
	NEXUS_TEST_RESULTS=$(NEXUS_TEST_RESULTS) /usr/bin/python3 bench/vm-ab/test_vm_ab.py
TEST_TARGETS += test-vm-ab
