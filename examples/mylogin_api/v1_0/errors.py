"""
Errors of mylogin_api 1.0.
"""

from shiji.webapi import APIError


class SampleNormalError(APIError):
    error_code = 100
    exception_class = "SampleNormalError"
    exception_text = (
        "A sample normal error that doesn't take arguments except for 'request'."
    )


class SampleAdvancedError(APIError):
    error_code = 101
    exception_class = "SampleAdvancedError"
    exception_text = (
        "A sample error that takes arguments in addition to 'request'. "
        "Extra Arg Value: %s"
    )

    def __init__(self, request_object, extra_arg):
        self.exception_text = self.exception_text % extra_arg
        APIError.__init__(self, request_object)


class EmailTakenError(APIError):
    error_code = 110
    exception_text = "A user with the email '%s' exists already."


class LoginFailedError(APIError):
    # One error for an unknown email and a wrong password: which one it was
    # would tell a stranger who has an account.
    error_code = 111
    exception_text = "The email or the password is wrong."
    http_status = 401


class TooManyAttemptsError(APIError):
    error_code = 112
    exception_text = "Too many attempts; try again in %s seconds."
    http_status = 429

    def __init__(self, request_object, retry_after):
        seconds = max(int(retry_after + 0.999), 1)
        APIError.__init__(self, request_object, seconds)
        self.headers["Retry-After"] = str(seconds)
