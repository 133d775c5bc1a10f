from dltui.cli import main

main()
