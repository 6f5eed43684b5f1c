from examsolver.cli import main

main()
