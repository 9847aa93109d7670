// ChorusLoop
