"""`autozero explain`: why each group of a policy is where it is, in sentences and a table.

Three ways in, one explanation: the operator's status and Events (`live`), `simulate`'s state at
an instant (`offline`), and `autozero run`'s own groups (`running`). Each turns what it has into
`Evidence`; `build` explains it and `render` prints it.
"""
