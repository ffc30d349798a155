# Code versions: the param that reruns a rule when the library code its script runs changes.
from matlabel import codehash
from matlabel.labels import MATTING_MODULES
from matlabel.methods import other_methods_modules


def code_version(script, by=None):
    """Param: a hash of the library code that scripts/<script>.py can run (its import closure within matlabel/,
    docstrings and comments left out; matlabel/codehash.py), so editing a line of code reruns exactly the rules
    whose scripts reach it (Snakemake's own code trigger sees only the script). by="method" or "row": per job, the
    modules of other method families (methods.FAMILY_MODULES) and, for threshold rows, the matting modules
    (labels.MATTING_MODULES) are left out."""
    path = Path(workflow.basedir, "scripts", f"{script}.py")
    package = Path(workflow.basedir, "matlabel")
    if by is None:
        return codehash.code_version(path, package)

    def per_job(wildcards):
        method, labeler = (wildcards.method, None) if by == "method" else SOURCES[wildcards.row]
        exclude = other_methods_modules(method) + (MATTING_MODULES if labeler == "threshold" else ())
        key = (script, exclude)
        if key not in _CODE_VERSIONS:  # thousands of jobs, a handful of versions: the files do not change mid-run
            _CODE_VERSIONS[key] = codehash.code_version(path, package, exclude)
        return _CODE_VERSIONS[key]

    return per_job


_CODE_VERSIONS = {}
