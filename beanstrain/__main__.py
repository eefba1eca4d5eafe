from beanstrain.cli import main

if __name__ == "__main__":  # `python -m beanstrain`; importing this module runs nothing
    main()
