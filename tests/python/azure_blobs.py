"""Containers and blobs of an Azurite (Azure Blob Storage emulator) account, for tests/azure.rs.

usage:
  azure_blobs.py create ENDPOINT CONTAINER...
      creates the containers in the emulator's account at ENDPOINT (http://127.0.0.1:PORT).
  azure_blobs.py list ENDPOINT CONTAINER PREFIX
      prints every blob under PREFIX as `name size md5`, one per line.
Either prints `ok` last when it succeeded.
"""

import sys

from azure.storage.blob import BlobServiceClient

# The emulator's one account and its published key (the same in every Azurite).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def client(endpoint):
    return BlobServiceClient.from_connection_string(
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint={endpoint}/{ACCOUNT};"
    )


def main(argv):
    command, endpoint = argv[1], argv[2]
    service = client(endpoint)
    if command == "create":
        for name in argv[3:]:
            service.create_container(name)
    elif command == "list":
        container, prefix = argv[3], argv[4]
        for blob in service.get_container_client(container).list_blobs(name_starts_with=prefix):
            md5 = blob.content_settings.content_md5
            print(blob.name, blob.size, md5.hex() if md5 else "-")
    else:
        sys.exit(f"unknown command {command}")
    print("ok")


if __name__ == "__main__":
    main(sys.argv)
