"""What `dataprep` and `train` share and neither owns: the user-error type and how a command line
reports it (`errors`), and where models come from (`models`)."""
