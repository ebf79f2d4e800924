"""The decision engine: pure functions from (policy, samples, state, now) to a Decision. No I/O."""
