from gpufleet.cli import run

run()
