"""The token lens: token-level views of generations and the base/chat token-shift analysis.

Pure logic and calls to model servers (client, tokens, vocabulary, shift, prefix, urial); the
use cases that store results are in service.py, routes and templates elsewhere. Import from the
submodules: this package's init stays empty so that app.generation can use app.generation.logprobs.
"""
