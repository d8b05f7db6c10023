# Sourced by the shell test targets (tests/rig/test-rig.sh, tests/vm/test-vm.sh,
# vmm/tests/test-vmm.sh).  write_counts FILE: the .counts file tests/run-all.sh sums, from the
# caller's $passed $failed $skipped and its arrays skips ("skip: <reason>" lines) and retries
# ("retried: <what>" lines: an environment failure run again, the retry's result counted).
write_counts() {
  { echo "passed=$passed failed=$failed skipped=$skipped"
    for s in "${skips[@]+"${skips[@]}"}"; do echo "skip: $s"; done
    for s in "${retries[@]+"${retries[@]}"}"; do echo "retried: $s"; done
  } >"$1"
}
