"""beanstrain: train the networks of a beginner's deep-learning course from the command line.

    beanstrain fit --dataset beans4 --model hidden2
    beanstrain eval beans4-hidden2 --min-accuracy 0.9
"""

__version__ = "0.1.0"
