"""Publishing an export to the Hugging Face Hub: plan the upload, then create the repo and upload.

- ``plan.plan_upload``: checks the export against its manifests and lists the exact files;
- ``hub.publish``: dry run, or create the repo and ``upload_folder`` through an injectable ``HfApi``;
- ``command``: the ``publish`` command line (``add_arguments``, ``run``).

Nothing is imported here, so the command line's parser can import ``command`` cheaply.
"""
