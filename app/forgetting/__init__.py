"""The forgetting check: answers scored against references, accuracies with bootstrap CIs."""
