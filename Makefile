# Alumet.Hpc — build, test, publish, benchmark, demo.
# `make demo` and `make test` are the two commands a fresh machine needs (see README.md).
SHELL    := /bin/bash
.SHELLFLAGS := -eo pipefail -c
DOTNET   ?= dotnet
CONFIG   ?= Release
OUT      := out
BIN      := $(OUT)/bin
export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_NOLOGO := 1

.PHONY: all build test publish bench bench-quick demo e2e clean

all: build

build:
	$(DOTNET) build Alumet.Hpc.sln -c $(CONFIG)

# NativeAOT: alumet-hpc (alumet-report is the same binary under another name) and alumet-hpc-sampler (the node
# sampler daemon alone, started by the prologs: a smaller binary, README "The node sampler").
# The grep makes any trimming/AOT warning (IL2xxx/IL3xxx) fail the build, ours or a package's.
publish:
	@mkdir -p $(OUT)
	$(DOTNET) publish src/Alumet.Hpc.Cli/Alumet.Hpc.Cli.csproj -c Release -r linux-x64 -o $(BIN) 2>&1 | tee $(OUT)/publish.log
	$(DOTNET) publish src/Alumet.Hpc.Sampler/Alumet.Hpc.Sampler.csproj -c Release -r linux-x64 -o $(BIN) 2>&1 | tee -a $(OUT)/publish.log
	@! grep -E "warning IL[23][0-9]{3}" $(OUT)/publish.log
	@ln -sf alumet-hpc $(BIN)/alumet-report
	gcc -O2 -Wall -Wextra -Werror -o $(BIN)/alumet-report-gate src/report-gate/alumet-report-gate.c
	@echo "published: $(BIN)/alumet-hpc $(BIN)/alumet-hpc-sampler (the node sampler, started by the prologs) $(BIN)/alumet-report (symlink, for root and per-user databases) $(BIN)/alumet-report-gate (install setgid as alumet-report: README)"

# Unit and integration tests (some run the native binary); with ALUMET_E2E_SLURM=1 / ALUMET_E2E_OAR=1 (root)
# also the end-to-end tests against a real Slurm / OAR that tests/run-all.sh starts (.ci/run sets both).
test: publish
	CONFIG=$(CONFIG) bash tests/run-all.sh $(CURDIR)/$(BIN)/alumet-hpc

demo: publish
	bash examples/demo.sh $(CURDIR)/$(BIN)

# Every figure against a minimal C program in the same run (bench/README.md); takes /tmp/alumet-bench.lock.
bench: publish
	bash bench/run.sh $(CURDIR)/$(BIN)

# The same, shorter: 3 s windows, 5 s OS-noise rows, 6 / 4 paired CPU-per-tick rounds (wide CIs), 100 000 jobs in the report database.
bench-quick: publish
	BENCH_SECONDS=3 BENCH_HELP_RUNS=5 BENCH_NOISE_SECONDS=5 BENCH_TICK_ROUNDS=6 BENCH_NODE_TICK_ROUNDS=4 BENCH_PARQUET_RAW_S=60 BENCH_PARQUET_AGG_S=600 BENCH_REPORT_ROWS=100000 BENCH_REPORT_RUNS=3 bash bench/run.sh $(CURDIR)/$(BIN)

clean:
	rm -rf $(OUT)
	$(DOTNET) clean Alumet.Hpc.sln -c $(CONFIG) >/dev/null
