"""Fuse our exported self-attention into onnxruntime's com.microsoft Attention op.

onnxruntime.transformers' attention fusions know the HF BERT/ViT graphs (separate q, k and v Linear
layers) and SAM2's Split-based packed qkv, but not the packed-qkv block that MAE, timm and clmae.vit
export (one qkv Linear, reshape to (N, T, 3, heads, head_dim), permute, then select q, k, v with
Gather). Written here because that pattern is ours; it is a Fusion (onnxruntime's own base class) so
it runs in the same machinery as the stock fusions. The matched subgraph, per block:

    x (N, T, C) -> MatMul(W (C, 3C)) -> Add(b (3C)) -> Reshape (N, T, 3, heads, C/heads)
      -> Transpose(2, 0, 3, 1, 4) -> Gather 0 -> Mul(scale) ----------------\\
                                   -> Gather 1 -> Transpose(0, 1, 3, 2) -> MatMul -> Softmax
                                   -> Gather 2 ----------------------------------------------> MatMul
      -> Transpose(0, 2, 1, 3) -> Reshape (N, T, C)

becomes Attention(x, W, b; num_heads, scale) -> (N, T, C). W's columns are already in Attention's
layout (q, k, v blocks of C, head-major inside each), since the Reshape splits 3C as (3, heads, head_dim).
"""

from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper
from onnxruntime.transformers.fusion_base import Fusion


class FusionPackedQkvAttention(Fusion):
    """Packed-qkv self-attention (no mask, no bias add on scores) -> com.microsoft Attention.

    Args:
        model: an onnxruntime.transformers OnnxModel (what optimizer.optimize_model returns).
        num_heads: heads of every attention block in the graph (the manifest's dims).
    """

    def __init__(self, model, num_heads: int) -> None:
        super().__init__(model, "Attention", "Softmax", "packed qkv")
        self.num_heads = num_heads

    def fuse(self, softmax, input_name_to_nodes, output_name_to_node) -> None:
        m = self.model
        # scores = (q * scale) @ k^T
        qk = m.match_parent_path(softmax, ["MatMul"], [0], output_name_to_node)
        if qk is None:
            return
        matmul_qk = qk[0]
        q_path = m.match_parent_path(matmul_qk, ["Mul", "Gather", "Transpose"], [0, None, 0], output_name_to_node)
        k_path = m.match_parent_path(matmul_qk, ["Transpose", "Gather", "Transpose"], [1, 0, 0], output_name_to_node)
        consumers = input_name_to_nodes.get(softmax.output[0], [])
        if q_path is None or k_path is None or len(consumers) != 1 or consumers[0].op_type != "MatMul":
            return
        mul_q, gather_q, permute = q_path
        transpose_k, gather_k, permute_k = k_path
        matmul_v = consumers[0]
        v_path = m.match_parent_path(matmul_v, ["Gather", "Transpose"], [1, 0], output_name_to_node)
        if permute_k is not permute or v_path is None or v_path[1] is not permute:
            return
        gather_v = v_path[0]
        if [self._gather_index(g) for g in (gather_q, gather_k, gather_v)] != [0, 1, 2]:
            return
        if m.get_node_attribute(permute, "perm") != [2, 0, 3, 1, 4] or m.get_node_attribute(transpose_k, "perm") != [0, 1, 3, 2]:
            return
        # qkv = x @ W + b, reshaped to (N, T, 3, heads, head_dim)
        proj = m.match_parent_path(permute, ["Reshape", "Add", "MatMul"], [0, None, None], output_name_to_node)
        if proj is None:
            return
        reshape_qkv, add_qkv, matmul_qkv = proj
        weight = m.get_initializer(matmul_qkv.input[1])
        bias_name = next((i for i in add_qkv.input if m.get_initializer(i) is not None), None)
        if weight is None or bias_name is None:
            return
        hidden = weight.dims[0]
        if list(weight.dims) != [hidden, 3 * hidden] or hidden % self.num_heads != 0:
            return
        # out = (attn @ v) transposed back and merged to (N, T, C)
        out = m.match_child_path(matmul_v, ["Transpose", "Reshape"], exclude=[], input_name_to_nodes=input_name_to_nodes)
        if out is None or m.get_node_attribute(out[0], "perm") != [0, 2, 1, 3]:
            return
        transpose_out, reshape_out = out
        scale = self._scalar(mul_q)
        if scale is None:
            return
        removed = [matmul_qkv, add_qkv, reshape_qkv, permute, gather_q, gather_k, gather_v, mul_q, transpose_k,
                   matmul_qk, softmax, matmul_v, transpose_out, reshape_out]
        if not m.is_safe_to_fuse_nodes(removed, reshape_out.output, input_name_to_nodes, output_name_to_node):
            return
        x = matmul_qkv.input[0]
        attention = helper.make_node("Attention", [x, matmul_qkv.input[1], bias_name], [reshape_out.output[0]],
                                     name=m.create_node_name("Attention"), domain="com.microsoft",
                                     num_heads=self.num_heads, scale=float(scale))
        self.nodes_to_remove.extend(removed)
        self.nodes_to_add.append(attention)
        self.node_name_to_graph_name[attention.name] = self.this_graph_name
        self.increase_counter("Attention")
        self.prune_graph = True

    def _constant(self, name: str) -> np.ndarray | None:
        """The value of an initializer or a Constant node's output."""
        tensor = self.model.get_initializer(name)
        value = numpy_helper.to_array(tensor) if tensor is not None else self.model.get_constant_value(name)
        return None if value is None else np.asarray(value)

    def _gather_index(self, gather) -> int | None:
        value = self._constant(gather.input[1])
        if value is None or value.size != 1 or self.model.get_node_attribute(gather, "axis") not in (0, None):
            return None
        return int(value.reshape(-1)[0])

    def _scalar(self, mul) -> float | None:
        for name in mul.input:
            value = self._constant(name)
            if value is not None and value.size == 1:
                return float(value.reshape(-1)[0])
        return None
