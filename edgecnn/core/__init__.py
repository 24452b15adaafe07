"""The torch-free core every layer uses: the model card, errors, atomic files, the one
preprocessing definition, file facts (image suffixes, hashes), the registry behind the
seams, the synthetic scene drawing and plots."""
