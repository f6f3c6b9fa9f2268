package signing

// Load reads the host key at path without creating it (evidenced doctor
// checks a key it must not create). The same checks as LoadOrCreate apply.
func Load(path, hostID string) (*Key, error) {
	if err := checkHostID(hostID); err != nil {
		return nil, err
	}
	return load(path, hostID)
}
