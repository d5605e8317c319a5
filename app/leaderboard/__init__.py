"""The leaderboard: Bradley-Terry ratings with bootstrap intervals over rated pairs."""
