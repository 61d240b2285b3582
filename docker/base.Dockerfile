# A stand-in for python:3.11-slim-bookworm, built from Debian packages alone, for machines that
# cannot pull from a public registry (air gaps, mirrors only). docker/build-base.sh builds the
# root filesystem it starts from with debootstrap; `make image-base` runs both steps.
#
# Debian's python3 is 3.11 on bookworm, as in the official image; `python` comes from
# python-is-python3. Builds run with --network host; apt reaches the same mirror the host uses.
ARG ROOTFS_IMAGE=opsml-rootfs:bookworm
FROM ${ROOTFS_IMAGE}

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       python3 python3-venv python-is-python3 ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*

# pip inside later builds must trust what the build host trusts (a proxy's CA may sit in its
# bundle): the host's bundle is passed in as the build context's only file.
COPY ca-certificates.crt /etc/ssl/certs/build-host-ca.crt
ENV PIP_CERT=/etc/ssl/certs/build-host-ca.crt \
    LANG=C.UTF-8
CMD ["python3"]
