from morphcpt.cli import main

main()
