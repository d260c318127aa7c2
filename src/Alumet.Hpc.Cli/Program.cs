using Alumet.Hpc.Commands;

// argv[0], not ProcessPath: ProcessPath resolves the alumet-report symlink to alumet-hpc.
return AlumetCli.Main(Environment.GetCommandLineArgs()[0], args);
