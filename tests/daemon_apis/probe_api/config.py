def validate_config(config_dict):
    if "refuse" in config_dict:
        raise ValueError(f"refused: {config_dict['refuse']}")
    return dict(config_dict, validated=True)
