"""The other side of the stream Avro test: fastavro writes the requests and reads mlship's results.

  avro_check.py write SCHEMA.avsc   < JSON records, one a line  -> hex of each datum in Confluent's wire format
  avro_check.py read  SCHEMA.avsc   < hex datums (Confluent-framed), one a line -> each datum as JSON
"""
import io
import json
import struct
import sys

import fastavro


def main() -> None:
    cmd, schema_path = sys.argv[1], sys.argv[2]
    with open(schema_path) as f:
        schema = fastavro.parse_schema(json.load(f))
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        if cmd == "write":
            buf = io.BytesIO()
            buf.write(struct.pack(">bI", 0, 1))  # magic byte 0, schema id 1
            fastavro.schemaless_writer(buf, schema, json.loads(line))
            print(buf.getvalue().hex())
        elif cmd == "read":
            data = bytes.fromhex(line)
            magic, _schema_id = struct.unpack(">bI", data[:5])
            if magic != 0:
                raise SystemExit(f"not Confluent-framed: magic byte {magic}")
            buf = io.BytesIO(data[5:])
            datum = fastavro.schemaless_reader(buf, schema)
            if buf.tell() != len(data) - 5:
                raise SystemExit("trailing bytes after the datum")
            print(json.dumps(datum))
        else:
            raise SystemExit(f"unknown command {cmd}")


main()
