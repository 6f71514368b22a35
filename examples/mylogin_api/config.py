"""
Configuration of mylogin_api, shared by all its versions.
"""

from typing import Any, Dict, Mapping


def validate_config(config_dict: Mapping[str, str]) -> Dict[str, Any]:
    """
    Check the options of the ``[config_mylogin_api]`` section and return the
    configuration handlers see as ``request.api_config["mylogin_api"]``.
    """
    required_fields: list = []
    for field in required_fields:
        if field not in config_dict:
            raise Exception(f"Missing required option '{field}' in API config.")
    return dict(config_dict)
