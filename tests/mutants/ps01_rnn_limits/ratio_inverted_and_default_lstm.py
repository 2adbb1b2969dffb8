# fails: test_rnn_ratio test_lstm_open_gate_ratio
# right function, wrong answers: g_0 / g_20 instead of g_20 / g_0, and the LSTM without forget_bias=3
# replaces: ratios_answer
rnn_norms = measure("rnn", inputs)
rnn_ratio_20 = (rnn_norms[0] / rnn_norms[20]).item()
lstm_norms = measure("lstm", inputs)
lstm_open_gate_ratio_20 = (lstm_norms[20] / lstm_norms[0]).item()

