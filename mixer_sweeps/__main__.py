from mixer_sweeps._cli import main

main()
