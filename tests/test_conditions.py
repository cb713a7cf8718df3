"""Conditions as data: pools, the deterministic sampler, manifests and user condition files."""

import json

import numpy as np
import pytest

from rl4vla.bench import conditions as C
from rl4vla.sim import catalog as K


def _split(pool, split):
    return {a.name for a in pool if a.split == split}


def test_pool_sizes_and_train_test_disjoint():
    assert (len(_split(K.OBJECTS, "train")), len(_split(K.OBJECTS, "test"))) == (16, 9)
    assert (len(_split(K.RECEPTACLES, "train")), len(_split(K.RECEPTACLES, "test"))) == (1, 16)
    assert (len(_split(K.TABLES, "train")), len(_split(K.TABLES, "test"))) == (16, 5)
    assert len(K.TEST_TEMPLATES) == 16 and K.TRAIN_TEMPLATE not in K.TEST_TEMPLATES
    for pool in (K.OBJECTS, K.RECEPTACLES, K.TABLES):
        assert not _split(pool, "train") & _split(pool, "test")
        assert len({a.name for a in pool}) == len(pool)  # names are unique
    assert _split(K.RECEPTACLES, "train") == {"plate"}


def _shape(o):
    return tuple(sorted((p.type, tuple(np.round(p.size, 4)), tuple(np.round(p.pos, 4)), p.mesh)
                        for p in o.parts if p.collide))


def test_test_objects_are_not_recolours_of_train_objects():
    shape = _shape

    train = {shape(o) for o in K.OBJECTS if o.split == "train"}
    for o in K.OBJECTS:
        if o.split == "test":
            assert shape(o) not in train, f"{o.name} has the geometry of a train object"


def _norm(template: str) -> str:
    return "".join(ch for ch in template.lower() if ch.isalnum() or ch in "{}")


def test_the_robot_pretraining_corpus_shares_nothing_with_any_test_pool():
    """Contaminated OOD numbers are worthless: no pretraining object, receptacle, table, template or texture
    may come from a test pool, and no pretraining object may be a benchmark (train) object."""
    objs, recs, tabs = _split(K.OBJECTS, "pretrain"), _split(K.RECEPTACLES, "pretrain"), _split(K.TABLES, "pretrain")
    assert (len(objs), len(recs), len(tabs), len(K.PRETRAIN_TEMPLATES)) == (48, 8, 12, 12)
    assert not objs & (_split(K.OBJECTS, "train") | _split(K.OBJECTS, "test"))
    assert not recs & (_split(K.RECEPTACLES, "train") | _split(K.RECEPTACLES, "test"))
    assert not tabs & (_split(K.TABLES, "train") | _split(K.TABLES, "test"))
    test_kinds = {t.kind for t in K.TABLES if t.split == "test"} - {t.kind for t in K.TABLES if t.split == "train"}
    assert not {t.kind for t in K.TABLES if t.split == "pretrain"} & test_kinds  # no checker, stripes, tiles...
    assert not {_norm(t) for t in K.PRETRAIN_TEMPLATES} & {_norm(t) for t in K.TEST_TEMPLATES}
    test_geometry = {_shape(o) for o in K.OBJECTS if o.split == "test"}
    assert not [o.name for o in K.OBJECTS if o.split == "pretrain" and _shape(o) in test_geometry]
    for name in ("robot-pretraining", "robot-pretraining-clutter"):
        src = C.get_condition(name)
        assert name not in [c.name for c in C.resolve_conditions("all")]  # never evaluated as a condition
        assert src.perturbation is None and src.positions == "grid"  # no perturbation texture, no test ring
        eps = C.sample_episodes(src, 0, 512)
        used_objects = {p.name for e in eps for p in e.objects}
        assert used_objects <= objs and len(used_objects) > 40
        assert {p.name for e in eps for p in e.receptacles} <= recs | {"plate"}
        assert {e.table for e in eps} <= tabs | _split(K.TABLES, "train") and len({e.table for e in eps}) > 20
        templates = {_norm(t.format(object="{object}", receptacle="{receptacle}")) for t in src.templates}
        assert not templates & {_norm(t) for t in K.TEST_TEMPLATES}
        assert all(e.instruction not in {t.format(object=e.target_object, receptacle=e.target_receptacle)
                                         for t in K.TEST_TEMPLATES} for e in eps)
        assert all("lighting" in e.extras and "camera" in e.extras for e in eps)
    clutter = C.sample_episodes(C.get_condition("robot-pretraining-clutter"), 0, 16)
    assert all(len(e.objects) == 2 for e in clutter)


def test_benchmark_episodes_have_no_jitter_and_keep_their_manifest():
    eps = C.sample_episodes(C.CONDITIONS["in-distribution"], 1000, 128)
    assert all(e.extras == {} for e in eps)
    assert C.manifest_hash(eps) == C.manifest_hash([C.Episode.from_dict(e.to_dict()) for e in eps])
    with pytest.raises(ValueError, match="camera_jitter must be in"):
        C.validate(C.Condition("x", "-", "", camera_jitter=0.5))
    with pytest.raises(ValueError, match="not a split; use 'pretrain', 'test', 'train'"):
        C.validate(C.Condition("x", "-", "", tables="nowhere"))


def test_jittered_look_is_set_per_episode_and_reset_after():
    from rl4vla.bench.task import Task
    from rl4vla.sim.scene import Scene

    jittered = C.sample_episode(C.get_condition("robot-pretraining"), 0, 3)
    with pytest.raises(ValueError, match="belongs to the robot-pretraining corpus, and this scene was built without"):
        Task(Scene()).reset(jittered)  # benchmark scenes leave the corpus' assets out (they cost physics time)
    assert C.episodes_use_pretraining_assets([jittered]) and C.uses_pretraining_assets([C.get_condition(
        "robot-pretraining")]) and not C.uses_pretraining_assets(list(C.CONDITIONS.values()))
    scene = Scene(pretraining_assets=True)
    task = Task(scene)
    cam, base = scene.layout.camera, (scene.model.cam_pos.copy(), scene.model.light_diffuse.copy())
    task.reset(jittered)
    shift = np.asarray(jittered.extras["camera"]["pos"])
    assert np.allclose(scene.model.cam_pos[cam] - base[0][cam], shift)
    assert np.allclose(scene.model.light_diffuse, base[1] * jittered.extras["lighting"]["key"])
    task.reset(C.sample_episode(C.CONDITIONS["in-distribution"], 0, 0))
    assert np.array_equal(scene.model.cam_pos, base[0]) and np.array_equal(scene.model.light_diffuse, base[1])


def test_collect_and_list_the_pretraining_source(tmp_path, capsys):
    from rl4vla.cli import main
    from rl4vla.data.demos import DemoDataset

    assert main(["collect", "--conditions", "robot-pretraining", "--out", str(tmp_path / "d"), "--episodes", "2",
                 "--env.num-envs", "2", "--env.workers", "0", "--env.image-size", "32"]) == 0
    data = DemoDataset(tmp_path / "d")
    assert len(data.episodes) == 2 and {e.condition for e in data.episodes} == {"robot-pretraining"}
    assert {e.episode["objects"][0]["name"] for e in data.episodes} <= _split(K.OBJECTS, "pretrain")
    capsys.readouterr()
    assert main(["conditions"]) == 0
    listed = capsys.readouterr().out
    assert "robot-pretraining" in listed.split("data sources")[1] and "robot-pretraining" not in listed.split(
        "data sources")[0]
    assert main(["conditions", "--json"]) == 0
    assert "robot-pretraining" not in [r["name"] for r in json.loads(capsys.readouterr().out)]


def test_textures_are_distinct():
    from rl4vla.sim.assets import perturbation_texture, table_texture

    texs = [perturbation_texture(i, 64) for i in range(16)]
    assert all(not np.array_equal(a, b) for i, a in enumerate(texs) for b in texs[i + 1:])
    tables = [table_texture(t, 64) for t in K.TABLES]
    assert all(not np.array_equal(a, b) for i, a in enumerate(tables) for b in tables[i + 1:])


def test_sixteen_builtin_conditions_cover_the_dimensions():
    names = list(C.CONDITIONS)[:16]
    assert names[0] == "in-distribution" and len(C.BUILTIN) == 16
    dims = [c.dimension for c in C.BUILTIN]
    assert (dims.count("vision"), dims.count("semantics"), dims.count("execution")) == (5, 7, 3)


@pytest.mark.parametrize("cond", C.BUILTIN, ids=lambda c: c.name)
def test_every_condition_resolves_deterministically_and_round_trips(cond, tmp_path):
    eps = C.sample_episodes(cond, seed=4, n=6)
    assert eps == C.sample_episodes(cond, seed=4, n=6)
    assert eps != C.sample_episodes(cond, seed=5, n=6)
    path = tmp_path / "m.json"
    C.write_manifest(str(path), eps)
    back = C.read_manifest(str(path))
    assert back == eps and C.manifest_hash(back) == C.manifest_hash(eps)
    for e in eps:
        assert e.target_object in e.instruction and e.target_receptacle in e.instruction


def test_episode_parameters_follow_their_condition():
    get = C.CONDITIONS.__getitem__
    test_objs, test_recs = _split(K.OBJECTS, "test"), _split(K.RECEPTACLES, "test")
    for e in C.sample_episodes(get("unseen-object"), 0, 20):
        assert e.target_object in test_objs and e.target_receptacle == "plate"
    for e in C.sample_episodes(get("multi-receptacle-unseen"), 0, 20):
        names = [r.name for r in e.receptacles]
        assert len(names) == 2 and len(set(names)) == 2 and set(names) <= test_recs
    for e in C.sample_episodes(get("multi-object-seen"), 0, 20):
        a, b = e.objects
        assert a.name != b.name and np.hypot(a.x - b.x, a.y - b.y) > 0.15
    for e in C.sample_episodes(get("unseen-position"), 0, 20):
        for p in (*e.objects, *e.receptacles):
            assert max(abs(p.x - 0.36), abs(p.y)) > C.GRID_HALF + 1e-6  # outside the training square
        assert e.objects[0].yaw < 0
    for e in C.sample_episodes(get("unseen-init-pose"), 0, 20):
        assert any(e.joint_offsets)
    for e in C.sample_episodes(get("mid-episode-reposition"), 0, 20):
        o, r, j = e.objects[0], e.receptacles[0], e.reposition
        assert j["step"] == 5 and np.hypot(j["x"] - o.x, j["y"] - o.y) > 0.15
        assert np.hypot(j["x"] - r.x, j["y"] - r.y) > C.MIN_SEPARATION
    for e in C.sample_episodes(get("in-distribution"), 0, 50):
        o, r = e.objects[0], e.receptacles[0]
        assert np.hypot(o.x - r.x, o.y - r.y) > C.MIN_SEPARATION
        assert e.instruction == f"put {o.name} on {r.name}"


def test_user_conditions_file(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text(
        "conditions:\n"
        "  - name: my-fruit\n"
        "    base: in-distribution\n"
        "    dimension: semantics\n"
        "    objects: [apple, orange]\n"
        "    templates: ['hand me the {object} on the {receptacle}']\n"
    )
    (cond,) = C.load_conditions_file(str(f))
    eps = C.sample_episodes(cond, 0, 10)
    assert {e.target_object for e in eps} <= {"apple", "orange"}
    assert all(e.instruction.startswith("hand me the ") for e in eps)

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "x", "objectz": ["apple"]}]))
    with pytest.raises(ValueError, match="unknown condition field.*valid:.*objects"):
        C.load_conditions_file(str(bad))
    bad.write_text(json.dumps([{"name": "x", "objects": ["unicorn"]}]))
    with pytest.raises(ValueError, match="unknown objects.*valid:.*apple"):
        C.load_conditions_file(str(bad))
    bad.write_text(json.dumps([{"name": "x", "templates": ["no placeholders"]}]))
    with pytest.raises(ValueError, match=r"\{object\}"):
        C.load_conditions_file(str(bad))


def test_eval_runs_a_user_condition_and_rereuns_a_manifest(tmp_path, capsys):
    from rl4vla.cli import main

    f = tmp_path / "mine.json"
    f.write_text(json.dumps({"conditions": [{"name": "only-sponge", "objects": ["sponge"]}]}))
    common = ["--policy", "noop", "--episodes", "2", "--env.num-envs", "2", "--env.workers", "0",
              "--env.image-size", "32", "--json"]
    m = tmp_path / "manifest.json"
    assert main(["eval", "--conditions-file", str(f), "--conditions", "only-sponge", "--save-manifest", str(m),
                 *common]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["conditions"]["only-sponge"]["episodes"] == 2
    eps = C.read_manifest(str(m))
    assert {e.target_object for e in eps} == {"sponge"}
    assert main(["eval", "--manifest", str(m), *common]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["manifest_hash"] == first["manifest_hash"]


def test_corrupt_manifest_is_reported(tmp_path):
    p = tmp_path / "m.json"
    C.write_manifest(str(p), C.sample_episodes(C.CONDITIONS["in-distribution"], 0, 2))
    doc = json.loads(p.read_text())
    doc["episodes"][0]["instruction"] += " quickly"  # edited by hand
    p.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="hash mismatch"):
        C.read_manifest(str(p))
    p.write_text("{not json")
    with pytest.raises(ValueError, match="not a readable episode manifest"):
        C.read_manifest(str(p))
