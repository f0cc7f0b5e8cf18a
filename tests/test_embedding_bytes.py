"""Byte counts of a lookup and its gradients, against the bytes of the tensors PyTorch really allocates.

Every oracle here is an ``nbytes`` of a real tensor (torch's own element sizes), never the formula retyped: the
functions under test compute through ``numpy_ref.tensor_bytes`` (its dtype table), so a wrong entry there, a
wrong index width or a forgotten term shows up as a mismatch.
"""

from __future__ import annotations

import pytest
import torch

from autograder.measure import embedding_bytes as EB

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "int8": torch.int8}
SIZES = [(1, 1, 1), (37, 50, 8), (256, 1024, 64)]  # (n_tokens, vocab_size, dim)


def _ids(n: int, vocab: int) -> torch.Tensor:
    """int64 ids with repeats (a sparse gradient then has fewer rows than tokens)."""
    return torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(n * vocab))


def test_index_bytes_are_torchs_index_dtype():
    emb = torch.nn.Embedding(10, 2, sparse=True)
    emb(torch.tensor([1, 3])).sum().backward()
    assert EB.INDEX_BYTES == emb.weight.grad.coalesce().indices().element_size()
    assert EB.INDEX_BYTES == torch.tensor([0]).element_size()  # the default integer dtype of token ids


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,vocab,dim", SIZES)
def test_forward_bytes_are_the_ids_the_rows_read_and_the_output(n, vocab, dim, dtype):
    weight = torch.zeros(vocab, dim, dtype=DTYPES[dtype])
    ids = _ids(n, vocab)
    out = torch.nn.functional.embedding(ids, weight) if dtype != "int8" else weight[ids]
    rows_read = weight[ids]  # what the lookup reads: one row per token, repeats read again
    assert EB.forward_bytes(n, dim, dtype) == ids.nbytes + rows_read.nbytes + out.nbytes


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,vocab,dim", SIZES)
def test_dense_backward_bytes_are_ids_and_grad_out_read_and_the_table_written(n, vocab, dim, dtype):
    ids = _ids(n, vocab)
    grad_out = torch.zeros(n, dim, dtype=DTYPES[dtype])
    gradient = torch.zeros(vocab, dim, dtype=DTYPES[dtype])
    assert EB.dense_gradient_bytes(vocab, dim, dtype) == gradient.nbytes
    assert EB.dense_backward_bytes(n, vocab, dim, dtype) == ids.nbytes + grad_out.nbytes + gradient.nbytes


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("n,vocab,dim", SIZES)
def test_sparse_bytes_match_nn_embeddings_real_sparse_gradients(n, vocab, dim, dtype):
    emb = torch.nn.Embedding(vocab, dim, sparse=True, dtype=DTYPES[dtype])
    ids = _ids(n, vocab)
    grad_out = torch.ones(n, dim, dtype=DTYPES[dtype])
    emb(ids).backward(grad_out)
    uncoalesced, coalesced = emb.weight.grad, emb.weight.grad.coalesce()
    rows = coalesced.values().shape[0]  # the distinct ids, as torch counts them
    stored = coalesced.indices().nbytes + coalesced.values().nbytes
    assert EB.sparse_gradient_bytes(rows, dim, dtype) == stored
    assert EB.sparse_backward_bytes(n, rows, dim, dtype) == ids.nbytes + grad_out.nbytes + stored
    # uncoalesced: the values are grad_out itself (no bytes moved); the ids are read and stored as the indices
    assert EB.sparse_uncoalesced_bytes(n) == ids.nbytes + uncoalesced._indices().nbytes


def test_every_count_refuses_an_unknown_dtype():
    for count in (
        lambda: EB.forward_bytes(4, 8, "float64"),
        lambda: EB.dense_backward_bytes(4, 10, 8, "fp8"),
        lambda: EB.sparse_backward_bytes(4, 2, 8, "int2"),
        lambda: EB.dense_gradient_bytes(10, 8, "x"),
    ):
        with pytest.raises(ValueError, match="unknown dtype"):
            count()
