"""NFSv4 status codes (RFC 7530 §13, RFC 5661 §15) and lock types, by name and number."""

from __future__ import annotations

NFS4_OK = 0
STATUS = {
    "NFS4ERR_PERM": 1, "NFS4ERR_NOENT": 2, "NFS4ERR_IO": 5, "NFS4ERR_ACCESS": 13,
    "NFS4ERR_EXIST": 17, "NFS4ERR_XDEV": 18, "NFS4ERR_NOTDIR": 20, "NFS4ERR_ISDIR": 21,
    "NFS4ERR_INVAL": 22, "NFS4ERR_NOSPC": 28, "NFS4ERR_ROFS": 30, "NFS4ERR_NAMETOOLONG": 63,
    "NFS4ERR_NOTEMPTY": 66, "NFS4ERR_STALE": 70, "NFS4ERR_NOTSUPP": 10004,
    "NFS4ERR_SERVERFAULT": 10006, "NFS4ERR_DELAY": 10008, "NFS4ERR_DENIED": 10010,
    "NFS4ERR_EXPIRED": 10011, "NFS4ERR_GRACE": 10013, "NFS4ERR_MINOR_VERS_MISMATCH": 10021,
    "NFS4ERR_STALE_CLIENTID": 10022, "NFS4ERR_STALE_STATEID": 10023,
    "NFS4ERR_BAD_STATEID": 10025, "NFS4ERR_NO_GRACE": 10033, "NFS4ERR_RECLAIM_BAD": 10034,
    "NFS4ERR_RECLAIM_CONFLICT": 10035, "NFS4ERR_LOCKS_HELD": 10037,
    "NFS4ERR_BAD_RANGE": 10042, "NFS4ERR_OP_ILLEGAL": 10044, "NFS4ERR_BADSESSION": 10052,
    "NFS4ERR_COMPLETE_ALREADY": 10054, "NFS4ERR_OP_NOT_IN_SESSION": 10071,
}
NAMES = {v: k for k, v in STATUS.items()}

# lock types (nfs_lock_type4)
READ_LT, WRITE_LT, READW_LT, WRITEW_LT = 1, 2, 3, 4
LOCK_TYPES = {"read": READ_LT, "write": WRITE_LT, "readw": READW_LT, "writew": WRITEW_LT}
TO_EOF = 0xFFFFFFFFFFFFFFFF  # a length of all ones: to the end of the file

# POSIX errno of a CephFS call -> NFSv4 status (as FSAL_CEPH maps them)
ERRNO = {1: "NFS4ERR_PERM", 2: "NFS4ERR_NOENT", 5: "NFS4ERR_IO", 13: "NFS4ERR_ACCESS",
         17: "NFS4ERR_EXIST", 18: "NFS4ERR_XDEV", 20: "NFS4ERR_NOTDIR", 21: "NFS4ERR_ISDIR",
         22: "NFS4ERR_INVAL", 28: "NFS4ERR_NOSPC", 30: "NFS4ERR_ROFS",
         36: "NFS4ERR_NAMETOOLONG", 39: "NFS4ERR_NOTEMPTY", 116: "NFS4ERR_STALE"}


class NFS4Error(Exception):
    """An operation's failure: `name` is e.g. "NFS4ERR_GRACE", `status` its number; `denied`
    describes the conflicting lock for NFS4ERR_DENIED."""

    def __init__(self, name: str, message: str = "", denied: dict | None = None) -> None:
        super().__init__(message or name)
        self.name = name
        self.status = STATUS[name]
        self.denied = denied


def from_errno(code: int) -> str:
    return ERRNO.get(code, "NFS4ERR_SERVERFAULT")
