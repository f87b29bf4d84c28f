package p2p

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strconv"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// KeyFromSeed derives a deterministic Ed25519 identity from a number, so a
// demo node started with -seed N has the same peer ID on every run. Such a
// key is public knowledge: use it for demos and tests only.
func KeyFromSeed(seed int64) ed25519.PrivateKey {
	s := sha256.Sum256([]byte("p2pchain/seed/" + strconv.FormatInt(seed, 10)))
	return ed25519.NewKeyFromSeed(s[:])
}

// GenerateKey returns a new random Ed25519 key.
func GenerateKey() (ed25519.PrivateKey, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	return k, err
}

// libp2pKey converts a standard library Ed25519 key to a libp2p key. The node
// signs readings and identifies itself with the same key.
func libp2pKey(k ed25519.PrivateKey) (crypto.PrivKey, error) {
	pk, err := crypto.UnmarshalEd25519PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	return pk, nil
}

// PeerID returns the libp2p peer ID of an identity key.
func PeerID(k ed25519.PrivateKey) (peer.ID, error) {
	pk, err := libp2pKey(k)
	if err != nil {
		return "", err
	}
	return peer.IDFromPrivateKey(pk)
}
