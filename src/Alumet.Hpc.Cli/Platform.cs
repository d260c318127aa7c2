// The product reads Linux kernel interfaces (sysfs, procfs, cgroupfs) and runs only on Linux.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
