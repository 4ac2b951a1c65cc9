"""One Prefect task per stage: arguments in, an lstm_core call, URIs or small results out."""
