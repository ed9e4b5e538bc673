import os

# Offline, quiet, CPU-friendly defaults for every test (the Makefile sets the same for `make test`).
for k, v in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1",
             "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "DS_BUILD_OPS": "0"}.items():
    os.environ.setdefault(k, v)


import pytest  # noqa: E402


@pytest.fixture
def fake_competition(tmp_path):
    """make(public={name: text}, private={name: text}, name="comp") → a custom Competition with only those files
    (what the sandbox reads: its public and private folders); make(None) → one whose folders do not exist."""
    from acelib.tasks.competition import Competition

    def make(public: dict[str, str] | None, private: dict[str, str] | None = None, name: str = "comp"):
        c = Competition(id=name, root=tmp_path / name, metric="accuracy", is_lower_better=False, id_column="id",
                        target_columns=("y",), suite="custom")
        if public is None:
            return c
        for folder, files in ((c.public_dir, public), (c.private_dir, private or {})):
            folder.mkdir(parents=True)
            for fname, text in files.items():
                (folder / fname).write_text(text)
        return c
    return make


@pytest.fixture(scope="session")
def ray_address_dir():
    """Ray's default temp dir, created: `ray.cluster_utils.Cluster` records its address in
    <that dir>/ray_current_cluster even when its nodes get their own temp_dir, and fails with FileNotFoundError on a
    machine where Ray never ran (a fresh CI machine). Every test that starts a Cluster asks for this."""
    from pathlib import Path

    from ray._common.utils import get_ray_address_file

    path = Path(get_ray_address_file(None)).parent
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def ray_cluster(ray_address_dir):
    """make(head_args, *node_args) → (cluster, temp_dir, nodes): a real `ray.cluster_utils.Cluster` (not connected)
    whose nodes are all up. Teardown shuts it down and removes its temp dir whatever happened in the test, a node
    that failed to start included, so no cluster outlives its test."""
    import shutil
    import tempfile
    from pathlib import Path

    from ray.cluster_utils import Cluster

    clusters, temp_dirs = [], []

    def make(head_args: dict, *node_args: dict):
        # Unique and short: Ray's socket paths have a length limit, and a fixed name would meet a leaked cluster.
        temp_dirs.append(Path(tempfile.mkdtemp(prefix="acelib-ray-", dir="/tmp")))
        # nodes start from this (the main) thread: Ray's node processes install signal handlers
        cluster = Cluster(initialize_head=True, connect=False,
                          head_node_args={**head_args, "temp_dir": str(temp_dirs[-1])})
        clusters.append(cluster)
        nodes = [cluster.add_node(**args) for args in node_args]
        cluster.wait_for_nodes()
        return cluster, temp_dirs[-1], nodes

    yield make
    for cluster in clusters:
        cluster.shutdown()
    for temp_dir in temp_dirs:
        shutil.rmtree(temp_dir, ignore_errors=True)


class PrivateRay:
    """The Ray of a driver subprocess a test kills: started in its own temp dir (pass `env` to the subprocess), so
    its processes can be found and ended without touching any other Ray on this machine. `ray stop --force`, used
    here before, also ended a user's training run that was going on beside `make test`."""

    def __init__(self, temp_dir: str):
        self.temp_dir = temp_dir
        self.env = {"RAY_TMPDIR": temp_dir}

    def processes(self) -> list:
        """Every process of this Ray: those started with the temp dir on their command line (GCS, raylet, agents)
        and everything they started (actors, engines, sandboxes)."""
        import psutil
        found = {}
        for p in psutil.process_iter(["cmdline"]):
            if any(self.temp_dir in part for part in (p.info["cmdline"] or [])):
                found[p.pid] = p
                try:
                    found.update({c.pid: c for c in p.children(recursive=True)})
                except psutil.NoSuchProcess:
                    pass
        return list(found.values())

    def find(self, name: str) -> list:
        """This Ray's processes with `name` in their command line (e.g. an actor class: "ray::RolloutWorker")."""
        import psutil
        out = []
        for p in self.processes():
            try:
                if any(name in part for part in p.cmdline()):
                    out.append(p)
            except psutil.NoSuchProcess:
                pass
        return out

    def kill(self) -> None:
        import psutil
        procs = self.processes()
        for p in procs:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=30)


@pytest.fixture
def private_ray():
    """A `PrivateRay` whose processes are killed at teardown, whatever happened in the test."""
    import shutil
    import tempfile

    temp_dir = tempfile.mkdtemp(prefix="acelib-ray-", dir="/tmp")   # short: Ray's socket paths have a length limit
    ray = PrivateRay(temp_dir)
    yield ray
    ray.kill()
    shutil.rmtree(temp_dir, ignore_errors=True)
