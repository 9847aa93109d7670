print("chorus-bench")
