"""`python -m nfs` is `mdsemu-nfs -c CONF -f GANESHA_CONF -i NODEID` (an NFS gateway head)."""

from nfs.daemon import main

if __name__ == "__main__":
    main()
