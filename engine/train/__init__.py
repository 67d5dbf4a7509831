"""Training: the loop, its process and launcher, several processes, fine-tuning, trainer helpers, benchmarks."""
