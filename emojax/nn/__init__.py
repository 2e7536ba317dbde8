"""Layer libraries the methods share (emojax/models holds the methods only).

  layers       recurrent stacks (BiLSTM: straight-line for short clips, else one scan; GRU / LSTM
               layers in one scan), torch-style
               initialisation (`torch_uniform`, `torch_linear`), parameter filters (`params_under`)
  video_conv   3D convolutions with measured lowerings, pooling (the video convnets)
"""
