# Integration tests: pytest against a freshly started node (nexusd + local
# signature-checking S3 server), through the same CLI and APIs a user has.
TEST_TARGETS += test-integration
.PHONY: test-integration
test-integration: $(ALL_TARGETS)
	cd tests/integration && /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider $(PYTEST_ARGS) .; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc
