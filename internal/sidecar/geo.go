package sidecar

import (
	"fmt"
	"math"
	"time"
)

// earthRadius is the IUGG mean Earth radius in metres. Haversine on a sphere
// is within 0.5 % of the WGS 84 ellipsoid: about 1.5 m at a 300 m radius,
// well inside a phone-grade GPS error.
const earthRadius = 6371008.8

// Haversine is the great-circle distance in metres between two points in
// decimal degrees.
func Haversine(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	φ1, φ2 := lat1*rad, lat2*rad
	dφ, dλ := (lat2-lat1)*rad, (lon2-lon1)*rad
	a := math.Sin(dφ/2)*math.Sin(dφ/2) + math.Cos(φ1)*math.Cos(φ2)*math.Sin(dλ/2)*math.Sin(dλ/2)
	return 2 * earthRadius * math.Asin(math.Sqrt(math.Min(1, a)))
}

// Near is the question "was the camera within Radius metres of Lat, Lon at
// some time in [Since, Until]?".
type Near struct {
	Lat, Lon     float64
	Radius       float64 // metres
	Since, Until time.Time
}

// Validate refuses a question that has no meaningful answer.
func (n Near) Validate() error {
	switch {
	case !(math.Abs(n.Lat) <= 90) || !(math.Abs(n.Lon) <= 180):
		return fmt.Errorf("near %v,%v: not a position in decimal degrees", n.Lat, n.Lon)
	case !(n.Radius > 0) || math.IsInf(n.Radius, 0):
		return fmt.Errorf("near: radius %v m must be a positive number", n.Radius)
	case n.Until.Before(n.Since):
		return fmt.Errorf("near: until %s is before since %s", n.Until, n.Since)
	}
	return nil
}

// Within returns the indexes of the track's fixes inside the window and the
// radius (bounds inclusive). It judges the fixes themselves, not the path
// between them: at one fix per second a vehicle at 100 km/h moves 28 m
// between fixes, so a radius much smaller than that can be crossed unseen.
func (n Near) Within(track []*Fix) []int {
	var out []int
	for i, f := range track {
		if f.Time.Before(n.Since) || f.Time.After(n.Until) {
			continue
		}
		if Haversine(n.Lat, n.Lon, f.Lat, f.Lon) <= n.Radius {
			out = append(out, i)
		}
	}
	return out
}
