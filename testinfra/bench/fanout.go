package main

import "errors"

func benchFanout(b *Bench) error { return errors.New("fanout: not written yet") }
