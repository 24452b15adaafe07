"""Device profiles: recognise a Raspberry Pi, a Jetson or a desktop and say what suits it."""
from devices.profile import DeviceProfile, detect

__all__ = ["DeviceProfile", "detect"]
