# SPDX-License-Identifier: MIT
# The Makefile of a test suite written without parallel runs in mind
# (the test copies it in as Makefile): each test starts a web server on
# the same hard-coded port, checks that it answers with the test's own
# name, and stops it. `make -j4` runs the four at once and they clash.
# Two ways to run it under portshim:
#
#   make -j4 RUN='portshim run --'
#       each test under its own `portshim run`, in a group of its own
#   PORTSHIM_GROUP_FROM=TEST_NAME portshim run -- make -j4
#       one run; each test's group is the run's plus its TEST_NAME
TESTS = t1 t2 t3 t4
PORT = 18090
PYTHON = python3
RUN =

check: $(TESTS:=.ok)

%.ok:
	@TEST_NAME=$* $(RUN) $(SHELL) ./server_test.sh $* $(PORT) \
	    $(PYTHON) >$*.log 2>&1 || { sed 's/^/$*: /' $*.log; exit 1; }
	@touch $@

clean:
	rm -f ./*.ok ./*.log
	rm -rf ./www-*

.PHONY: check clean
