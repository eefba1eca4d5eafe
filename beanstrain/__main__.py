from beanstrain.cli import main

main()
