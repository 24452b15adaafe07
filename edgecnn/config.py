"""`python -m edgecnn.config`: print the JSON Schema of `edgecnn run --config` files
(edgecnn.runtime.config)."""
from edgecnn.runtime.config import config_schema, load_config, main  # noqa: F401

if __name__ == "__main__":
    main()
