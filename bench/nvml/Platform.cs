// Linux-only, like the library it measures.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
