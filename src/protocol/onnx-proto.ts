// The subset of the ONNX protobuf schema that mlship decodes without onnxruntime (field numbers as in onnx.proto3).

/**
 * The part of onnx.proto3 (github.com/onnx/onnx, onnx/onnx.proto3; field numbers unchanged) mlship reads itself (tree/linear models,
 * encoder categories), committed here as text and parsed by protobufjs with `keepCase: true`.
 */
export const ONNX_PROTO = `
syntax = "proto3";
package onnx;
message ModelProto { int64 ir_version = 1; repeated OperatorSetIdProto opset_import = 8; GraphProto graph = 7; }
message OperatorSetIdProto { string domain = 1; int64 version = 2; }
message GraphProto {
	repeated NodeProto node = 1;
	string name = 2;
	repeated TensorProto initializer = 5;
	repeated ValueInfoProto input = 11;
	repeated ValueInfoProto output = 12;
}
message NodeProto {
	repeated string input = 1;
	repeated string output = 2;
	string name = 3;
	string op_type = 4;
	repeated AttributeProto attribute = 5;
	string domain = 7;
}
message AttributeProto {
	string name = 1;
	float f = 2;
	int64 i = 3;
	bytes s = 4;
	TensorProto t = 5;
	repeated float floats = 7;
	repeated int64 ints = 8;
	repeated bytes strings = 9;
}
message TensorProto {
	repeated int64 dims = 1;
	int32 data_type = 2;
	repeated float float_data = 4;
	repeated int32 int32_data = 5;
	repeated int64 int64_data = 7;
	string name = 8;
	bytes raw_data = 9;
	repeated double double_data = 10;
}
message ValueInfoProto { string name = 1; TypeProto type = 2; }
message TypeProto { Tensor tensor_type = 1; message Tensor { int32 elem_type = 1; TensorShapeProto shape = 2; } }
message TensorShapeProto { repeated Dimension dim = 1; message Dimension { int64 dim_value = 1; string dim_param = 2; } }
`;
