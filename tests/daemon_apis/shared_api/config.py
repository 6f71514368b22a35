def validate_config(config_dict):
    return dict(config_dict)
