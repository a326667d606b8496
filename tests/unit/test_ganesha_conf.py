"""ganesha.conf for the gateway (nfs/ganesha_conf.py): the seed's example loads as it is, with
Ganesha's defaults and ranges; bad input is an error that names the line."""

from __future__ import annotations

import pytest

from nfs.ganesha_conf import GaneshaConfError, load, load_text

# seed 004's ganesha.conf, comments stripped as in the seed, braces restored
SEED = """\
NFS_CORE_PARAM
{
\tEnable_NLM = false;
\tEnable_RQUOTA = false;
\tProtocols = 4;
}

NFSv4
{
\tRecoveryBackend = rados_cluster;
\tMinor_Versions = 1,2;
}

MDCACHE {
\tDir_Chunk = 0;
\tNParts = 1;
\tCache_Size = 1;
}

EXPORT
{
\tProtocols = 4;
\tTransports = TCP;
\tPath = /;
\tPseudo = /ceph/;
\tAccess_Type = RW;
\tAttr_Expiration_Time = 0;

\tFSAL {
\t\tName = CEPH;
\t}
}

RADOS_KV
{
\tpool = "cephfs.a.meta";
\tnamespace = "ganesha";
\tnodeid = "a";
}
"""


def test_the_seeds_example_loads():
    c = load_text(SEED)
    assert (c.enable_nlm, c.enable_rquota, c.protocols) == (False, False, (4,))
    assert (c.recovery_backend, c.minor_versions) == ("rados_cluster", (1, 2))
    assert (c.grace_period, c.lease_lifetime, c.graceless, c.nfs_port) == (90, 60, False, 2049)
    assert (c.pool, c.namespace, c.nodeid, c.grace_oid) == ("cephfs.a.meta", "ganesha", "a",
                                                            "grace")
    [e] = c.exports
    assert (e.path, e.pseudo, e.access_type, e.protocols, e.transports, e.fsal) == \
        ("/", "/ceph/", "RW", (4,), ("TCP",), "CEPH")
    assert e.export_id == 1  # the seed has no Export_ID: mdsemu numbers it, with a warning
    assert any("MDCACHE" in w for w in c.warnings)
    assert any("Export_ID" in w for w in c.warnings)


def test_defaults_and_values(tmp_path):
    c = load_text("")
    assert (c.recovery_backend, c.grace_period, c.lease_lifetime) == ("fs", 90, 60)
    assert (c.pool, c.nodeid, c.exports) == ("nfs-ganesha", "", [])
    p = tmp_path / "ganesha.conf"
    p.write_text("# a comment\nnfsv4 { grace_period = 20; LEASE_LIFETIME = 10; Graceless = "
                 "true }\nNFS_CORE_PARAM { NFS_Port = 12049; }\nEXPORT { Export_ID = 7; "
                 "Path = '/a b'; Pseudo = /x; FSAL { Name = ceph; } }")
    c = load(str(p))
    assert (c.grace_period, c.lease_lifetime, c.graceless, c.nfs_port) == (20, 10, True, 12049)
    assert (c.exports[0].export_id, c.exports[0].path, c.exports[0].fsal) == (7, "/a b", "CEPH")


@pytest.mark.parametrize("text,line,problem", [
    ("NFSv4 {\n Grace_Period = 200;\n}", 2, "Grace_Period: 200 is out of range (0 to 180)"),
    ("NFSv4 {\n Lease_Lifetime = 0;\n}", 2, "Lease_Lifetime: 0 is out of range (1 to 120)"),
    ("NFSv4 {\n RecoveryBackend = nfsd;\n}", 2, "RecoveryBackend: 'nfsd' is not one of"),
    ("NFSv4 {\n Graceless = maybe;\n}", 2, "Graceless: 'maybe' is not a boolean"),
    ("NFSv4 {\n Minor_Versions = 1,5;\n}", 2, "Minor_Versions: '5' is not one of"),
    ("NFSv4 {\n Grace_Period = 1\n Lease_Lifetime = 2;\n}", 2, "expected ';' after the value"),
    ("NFSv4 {\n Grace_Period = ;\n}", 2, "missing value"),
    ("\nNFSv4 {\n Grace_Period = 1;\n", 2, "block 'NFSv4' is not closed"),
    ("}\n", 1, "unexpected '}'"),
    ("Grace_Period = 1;", 1, "parameter 'Grace_Period' outside a block"),
    ("EXPORT { Path = /; FSAL { Name = CEPH; } }", 1, "EXPORT: mandatory parameter pseudo is missing"),
    ("EXPORT { Path = /; Pseudo = /; }", 1, "EXPORT: an FSAL block with a Name is required"),
])
def test_bad_input_names_file_and_line(text, line, problem):
    with pytest.raises(GaneshaConfError) as e:
        load_text(text, "g.conf")
    assert str(e.value).startswith(f"Config File (g.conf:{line}): {problem}"), str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(GaneshaConfError) as e:
        load(str(tmp_path / "nope.conf"))
    assert "cannot read: No such file or directory" in str(e.value)
